// Child process of the DHCP bench: tapwire's DhcpServer, one per sandbox netns (as the
// daemon runs them), in a process of its own so the bench's client does not share its event
// loop. argv[2] is a JSON file: [{ netns, lease }]. Prints "base <rss KB>" before starting
// and "ready <n>" once every server is listening (after warming the message path as the
// daemon does at start); exits on SIGTERM or when stdin closes.
// With argv[3] = --echo it runs the Node floor instead: the same bound dgram socket, but each
// request is answered by a copy of itself turned into a reply (op 2, type 53 rewritten), with
// no decoding, state or options: what any DHCP server written on Node's dgram costs at least.
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import { udpSocketBoundToDevice, withNetns } from '../src/native';
import { DhcpServer, StaticLease } from '../src/dhcp/server';
import { warmUpDhcp, warmUpDhcpFromSocket } from '../src/dhcp/warmup';

function rssKb(): number {
  return Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))?.[1]);
}

async function main(): Promise<void> {
  const conf = JSON.parse(fs.readFileSync(process.argv[2]!, 'utf8')) as { netns: string; lease: StaticLease }[];
  process.stdout.write(`base ${rssKb()}\n`);
  if (process.argv[3] !== '--echo') {
    // as the tapmanager daemon does at start
    warmUpDhcp();
    await warmUpDhcpFromSocket();
  }
  const servers: { close(): Promise<void> }[] = [];
  for (const c of conf) {
    if (process.argv[3] === '--echo') {
      servers.push(await echo(c.netns));
      continue;
    }
    servers.push(
      await DhcpServer.start({ ifname: 'br0', netns: c.netns, serverId: '169.254.254.2', leases: [c.lease] }),
    );
  }
  process.stdout.write(`ready ${servers.length}\n`);
  const stop = (): void => {
    void Promise.all(servers.map((s) => s.close())).then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.stdin.on('end', stop).resume();
}

const REPLY_TYPE: Record<number, number> = { 1: 2, 3: 5, 8: 5 }; // DISCOVER->OFFER, REQUEST->ACK, INFORM->ACK

async function echo(netns: string): Promise<{ close(): Promise<void> }> {
  const fd = withNetns(netns, () => udpSocketBoundToDevice('br0', 67));
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => sock.bind({ fd }, () => resolve()));
  sock.on('message', (msg) => {
    const out = Buffer.from(msg);
    out[0] = 2;
    // the bench client writes option 53 first: 240 = 53, 241 = 1, 242 = type
    if (out[240] === 53) out[242] = REPLY_TYPE[out[242]!] ?? 0;
    const ciaddr = out.readUInt32BE(12);
    const to = ciaddr ? [out[12], out[13], out[14], out[15]].join('.') : '255.255.255.255';
    sock.send(out, 68, to);
  });
  return { close: () => new Promise((r) => sock.close(() => r())) };
}

main().catch((e: unknown) => {
  process.stderr.write(`dhcp-serve: ${(e as Error).message}\n`);
  process.exit(1);
});
