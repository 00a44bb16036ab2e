// critest (unmodified cri-tools v1.26.1, an external judge in ../shared) against containerd
// directly and through tapwire-cri --backend, in the same containerd rig: the proxy must pass
// every spec that passes directly: all but the one that pulls a pinned upstream digest. The
// images the specs use are stand-ins built here: the rig imports those the other specs run,
// and a registry of the test's own (Debian's docker-registry on the rig's loopback) serves
// the ones the Image Manager specs pull, and the imported ones, to containerd as a mirror of
// gcr.io and registry.k8s.io. The Image Manager specs remove what they pull (by image id):
// after each run every imported image must still be there. critest runs in the rig's mount
// namespace (as a kubelet shares its runtime's). Prints a summary.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CRITEST_SKIP, runCritest, type CritestResult } from '../fixtures/containerd/critest';
import { critestImages, registryImages } from '../fixtures/containerd/critest-images';
import { CRI_BIN, startProxy, type ProxyProc } from '../fixtures/containerd/proxy-proc';
import { startRegistry, type Registry } from '../fixtures/containerd/registry';
import { startContainerd, type Containerd } from '../../src/demo/containerd/rig';
import { describeJudgedBy, inCI, requireTools } from '../helpers/privileged';

const missing =
  requireTools(
    'containerd',
    'containerd-shim-runc-v2',
    'runc',
    'ctr',
    'gcc',
    'unshare',
    'nsenter',
    'docker-registry',
  ) ?? (fs.existsSync(CRI_BIN) ? undefined : `${CRI_BIN} is not built (npm run build)`);

const summary = (r: CritestResult): string =>
  `${r.passed} passed, ${r.failed} failed of ${r.ran} run (${r.total} specs, ${r.skipped} skipped)`;

describeJudgedBy('critest through the tapwire-cri proxy', 'cri-tools/critest', (critest) => {
  let rig: Containerd | undefined;
  let proxy: ProxyProc | undefined;
  let registry: Registry | undefined;
  let tmp: string;
  let direct: CritestResult | undefined;
  /** the critest images the rig imported (the specs but Image Manager's use them) */
  let imported: string[] = [];

  /** manifest requests containerd made of the registry as gcr.io's mirror (it adds ?ns=gcr.io): access log lines */
  const mirrorPulls = (): number =>
    registry!.log().match(/"(?:GET|HEAD) \/v2\/\S*\/manifests\/\S*\?ns=gcr\.io HTTP/g)?.length ?? 0;

  const importedNow = async (): Promise<string[]> =>
    (await rig!.ctr('images', 'ls', '-q'))
      .split('\n')
      .filter((n) => /^(gcr\.io|registry\.k8s\.io)\//.test(n))
      .sort();

  beforeAll(async () => {
    if (missing) {
      if (inCI) throw new Error(missing);
      return;
    }
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'twt-critest-'));
    rig = await startContainerd({ label: 'critest', images: critestImages });
    imported = await importedNow();
    const t0 = Date.now();
    registry = await startRegistry(rig);
    const pushed = await registry.fill(registryImages(), imported);
    rig.mirror(['gcr.io', 'registry.k8s.io'], `http://${registry.address}`);
    console.log(`[critest] registry on ${registry.address}: ${pushed.length} images pushed in ${Date.now() - t0} ms`);
    proxy = await startProxy(path.join(tmp, 'cri.sock'), `unix://${rig.socket}`);
  }, 180_000);

  afterAll(async () => {
    await proxy?.stop();
    await registry?.stop();
    await rig?.stop();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  }, 120_000);

  it('passes against containerd directly (the baseline)', async (ctx) => {
    if (!rig) return ctx.skip(missing ?? 'no rig');
    const pulls = mirrorPulls();
    direct = await runCritest(critest, rig.socket, {
      wrap: rig.inNamespace,
      tmpDir: path.join(tmp, 'tmp'),
      logTo: path.join(tmp, 'direct.log'),
    });
    console.log(
      `[critest] containerd directly (skip '${CRITEST_SKIP}'): ${summary(direct)}; ` +
        `${mirrorPulls() - pulls} manifest requests to the registry`,
    );
    for (const f of direct.failures) console.log(`[critest]   failed directly: ${f}`);
    expect(direct.ran).toBeGreaterThan(0);
    expect(mirrorPulls()).toBeGreaterThan(pulls);
    expect(await importedNow()).toEqual(imported);
  }, 600_000);

  it('passes through tapwire-cri --backend every spec that passes directly', async (ctx) => {
    if (!rig || !proxy) return ctx.skip(missing ?? 'no rig');
    const pulls = mirrorPulls();
    const via = await runCritest(critest, proxy.socket, {
      wrap: rig.inNamespace,
      tmpDir: path.join(tmp, 'tmp'),
      logTo: path.join(tmp, 'proxy.log'),
    });
    console.log(
      `[critest] through tapwire-cri --backend containerd: ${summary(via)}; ` +
        `${mirrorPulls() - pulls} manifest requests to the registry`,
    );
    const extra = via.failures.filter((f) => !direct?.failures.includes(f));
    if (extra.length || via.ran === 0) {
      console.log(via.output.slice(-20_000));
      console.log(`[tapwire-cri stderr]\n${proxy.stderr().slice(-5000)}`);
    }
    expect(via.ran).toBe(direct?.ran ?? via.ran);
    expect(extra).toEqual([]);
    expect(via.passed).toBe(direct?.passed ?? via.passed);
    expect(mirrorPulls()).toBeGreaterThan(pulls);
    expect(await importedNow()).toEqual(imported);
  }, 600_000);
});
