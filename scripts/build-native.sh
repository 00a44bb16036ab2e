#!/bin/sh
# build-native.sh: the addon (node-gyp rebuild) against the headers of the node that runs it,
# installed beside it (PREFIX/include/node for PREFIX/bin/node, as nodejs packages and
# release tarballs lay them out), passed as node-gyp's own --nodedir option: nothing is
# downloaded and no npm config is needed. Without matching local headers node-gyp fetches
# them as usual (this says so first). npm runs this as the package's install script.
set -eu
nodedir=$(node -e '
  const fs = require("fs"), path = require("path");
  const dir = path.resolve(process.execPath, "..", "..");
  let h = "";
  try { h = fs.readFileSync(path.join(dir, "include", "node", "node_version.h"), "utf8"); } catch {}
  const v = ["MAJOR", "MINOR", "PATCH"].map((k) => (new RegExp(`#define NODE_${k}_VERSION (\\d+)`).exec(h) || [])[1]);
  if (`v${v.join(".")}` === process.version) console.log(dir);
')
if [ -n "$nodedir" ]; then
  set -- --nodedir="$nodedir" "$@"
else
  echo "build-native: no headers for node $(node -v) beside $(command -v node); node-gyp will download them" >&2
fi
exec node-gyp rebuild "$@"
