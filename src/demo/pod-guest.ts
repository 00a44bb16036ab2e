// Boots tapwire's guest as a kubelet would have a VM pod's container run it: CreateContainer
// and StartContainer through tapwire-cri --backend, with the VM image
// (containerd/vm-image.ts) whose entrypoint is vmwrapper; tapwire-cri puts TAPWIRE_NET_KEY,
// TAPWIRE_FD_SOCKET and the fd socket's directory in the container, vmwrapper fetches the tap
// fd and execs QEMU there. QEMU's serial console is the container's stdout, read from the
// container's log (the kubelet's log format) as it grows.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { guestCmdline, qemuArgs, verdict } from '../guest';
import { ConsoleReader } from '../guest/console';
import { followCriLog } from './containerd/cri-log';
import { IMAGE_GUEST, VM_IMAGE } from './containerd/vm-image';
import type { RuntimeCalls } from './cri-client';
import type { GuestRun } from './guest';

export interface PodGuestOptions {
  rt: RuntimeCalls;
  sandboxId: string;
  /** the sandbox's config as RunPodSandbox got it (with logDirectory) */
  sandboxConfig: { logDirectory: string } & Record<string, unknown>;
  timeoutMs: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function bootGuestInPod(o: PodGuestOptions): Promise<GuestRun & { containerId: string }> {
  const append = [guestCmdline({ dhcpTries: 20 }), process.env.TAPWIRE_DEMO_APPEND].filter(Boolean).join(' ');
  const logPath = 'vm.log';
  fs.mkdirSync(o.sandboxConfig.logDirectory, { recursive: true });
  const { containerId } = (await o.rt.CreateContainer!({
    podSandboxId: o.sandboxId,
    config: {
      metadata: { name: 'vm' },
      image: { image: VM_IMAGE },
      args: qemuArgs({ ...IMAGE_GUEST, append, name: 'tapwire-demo', console: 'stdio' }),
      logPath,
      linux: {},
    },
    sandboxConfig: o.sandboxConfig,
  })) as { containerId: string };
  const reader = new ConsoleReader();
  const follow = followCriLog(path.join(o.sandboxConfig.logDirectory, logPath), reader);
  let execedInto = '?';
  let state = '';
  try {
    await o.rt.StartContainer!({ containerId });
    const st = await o.rt.ContainerStatus!({ containerId, verbose: true });
    const pid = (JSON.parse(st.info?.info ?? '{}') as { pid?: number }).pid ?? 0;
    for (const end = Date.now() + o.timeoutMs; Date.now() < end; await sleep(200)) {
      if (execedInto === '?' && reader.report.start) {
        // the guest is talking: QEMU runs, as the container's first process
        try {
          execedInto = `${fs.readlinkSync(`/proc/${pid}/exe`)} (pid ${pid}, the pid vmwrapper started as)`;
        } catch {
          /* already gone */
        }
      }
      state = String((await o.rt.ContainerStatus!({ containerId })).status?.state);
      if (state !== 'CONTAINER_RUNNING') break; // the guest powered off, QEMU exited
    }
  } finally {
    follow.stop();
  }
  const v = verdict(reader.report, { leases: 1, pings: 1 });
  if (state === 'CONTAINER_RUNNING') v.problems.unshift(`the guest did not finish in ${o.timeoutMs / 1000} s`);
  const ok = v.problems.length === 0;
  return {
    containerId,
    user: "root (the container's)",
    execedInto,
    lease: reader.report.leases[0],
    lines: reader.report.lines,
    problems: ok ? [] : [...v.problems, ...reader.tail.slice(-10).map((l) => `console: ${l}`)],
    ok,
  };
}
