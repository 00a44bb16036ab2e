{
  "targets": [
    {
      "target_name": "tapwire",
      "sources": [
        "native/addon.cc",
        "native/errors.cc",
        "native/fdpass.cc",
        "native/exec.cc",
        "native/netns.cc",
        "native/tun.cc",
        "native/sock.cc",
        "native/nft.cc",
        "native/netns_job.cc",
        "native/nlbatch.cc",
        "native/nldumps.cc",
        "native/mount.cc",
        "native/icmp6.cc",
        "native/udp4.cc",
        "native/watch.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except_all"],
      "cflags_cc": ["-std=c++17", "-O2", "-fstack-protector-strong", "-Wall", "-Wextra"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "libraries": ["-ldl"]
    }
  ]
}
