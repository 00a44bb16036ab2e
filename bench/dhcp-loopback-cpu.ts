// The DHCP server's CPU per exchange on loopback, against the Node floor, without root or
// namespaces: a DhcpServer bound to lo (as the warm-up's server is) answers a client in a
// child process, one request in flight (DISCOVER, REQUEST alternating, as udhcpc shapes
// them), and the server thread's CPU time is read from /proc schedstat over the measured
// rounds: unlike latency it barely moves with the machine's load. `--echo` measures the
// floor instead: a dgram socket that answers with a copy of the request; `--js` the server
// with the addon's learned answers off (src/dhcp/fast-answers.ts), i.e. its JS path, which
// the repeated requests would otherwise skip. Both processes are
// pinned to one CPU (TWB_DHCP_CPU, default 1; "none" leaves them), as bench/dhcp.ts pins
// its client and servers: a wake-up across CPUs of this VM costs more than the exchange.
//   node dist/bench/dhcp-loopback-cpu.js [--echo | --js] [rounds]
// Prints {mode, usCpuPerExchange, usWallPerExchange}. The docs/dhcp-latency.md figures are
// the median of 5 interleaved runs of each.
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import { MessageType, Opt } from '../src/dhcp/constants';
import { IpOption, MessageTypeOption, ParameterListOption } from '../src/dhcp/options';
import { DhcpPacket } from '../src/dhcp/packet';
import { DhcpServer } from '../src/dhcp/server';
import { DEFAULT_PRL } from '../test/fixtures/dhcp-client';

const MAC = '02:00:5e:00:53:09';
const LOOPBACK = '127.0.0.1';

function threadCpuNs(): number {
  return Number(fs.readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0]);
}

function request(type: number): Buffer {
  const p = new DhcpPacket().setMac(MAC);
  p.xid = 0x12345678;
  p.set(Opt.MESSAGE_TYPE, new MessageTypeOption(type));
  p.set(Opt.PARAMETER_REQUEST_LIST, new ParameterListOption(DEFAULT_PRL));
  if (type === MessageType.REQUEST)
    p.set(Opt.REQUESTED_IP, new IpOption(LOOPBACK)).set(Opt.SERVER_ID, new IpOption(LOOPBACK));
  return p.encode();
}

/** The child: sends the next request as each reply arrives, `n` rounds per order from the parent. */
function client(): void {
  const msgs = [request(MessageType.DISCOVER), request(MessageType.REQUEST)];
  const sock = dgram.createSocket('udp4');
  sock.bind(0, LOOPBACK, () => process.send!({ port: sock.address().port }));
  let done = 0;
  let want = 0;
  let server = 0;
  sock.on('message', () => {
    if (++done === want) process.send!({ done });
    else sock.send(msgs[done & 1]!, server, LOOPBACK);
  });
  process.on('message', (m: { server: number; n: number }) => {
    server = m.server;
    done = 0;
    want = m.n;
    sock.send(msgs[0]!, server, LOOPBACK);
  });
}

async function echo(clientPort: number): Promise<number> {
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, LOOPBACK, () => r()));
  sock.on('message', (msg) => {
    const out = Buffer.from(msg);
    out[0] = 2;
    if (out[240] === Opt.MESSAGE_TYPE)
      out[242] = out[242] === MessageType.DISCOVER ? MessageType.OFFER : MessageType.ACK;
    sock.send(out, clientPort, LOOPBACK);
  });
  return sock.address().port;
}

async function tapwire(clientPort: number, fastAnswers: boolean): Promise<number> {
  const server = await DhcpServer.start({
    fastAnswers,
    ifname: 'lo',
    serverId: LOOPBACK,
    port: 0,
    clientPort, // every reply is unicast to yiaddr (127.0.0.1) at this port
    leases: [
      {
        mac: MAC,
        ip: LOOPBACK,
        prefixLen: 8,
        routers: ['127.0.0.254'],
        classlessRoutes: [{ dst: '10.96.0.0/12', gw: '127.0.0.254' }],
        dns: ['10.96.0.10'],
        search: ['default.svc.cluster.local', 'svc.cluster.local', 'cluster.local'],
        domain: 'cluster.local',
        hostname: 'pod-0',
        mtu: 1450,
      },
    ],
  });
  return server.localPort();
}

async function main(): Promise<void> {
  const floor = process.argv.includes('--echo');
  const rounds = Number(process.argv.find((a) => /^\d+$/.test(a)) ?? 20000);
  const child: ChildProcess = fork(__filename, ['--client'], { execArgv: [] });
  const clientPort = await new Promise<number>((r) => child.once('message', (m: { port: number }) => r(m.port)));
  const cpu = process.env.TWB_DHCP_CPU ?? '1';
  if (cpu !== 'none') {
    for (const pid of [process.pid, child.pid!])
      execFileSync('taskset', ['-a', '-pc', cpu, String(pid)], { stdio: 'ignore' });
  }
  const js = process.argv.includes('--js');
  const port = floor ? await echo(clientPort) : await tapwire(clientPort, !js);
  const run = async (n: number): Promise<void> => {
    const done = new Promise((r) => child.once('message', r));
    child.send({ server: port, n });
    await done;
  };
  await run(rounds); // V8 optimises the path
  const c0 = threadCpuNs();
  const t0 = process.hrtime.bigint();
  await run(rounds);
  const used = (threadCpuNs() - c0) / 1000 / rounds;
  const wall = Number(process.hrtime.bigint() - t0) / 1000 / rounds;
  console.log(
    JSON.stringify({
      mode: floor ? 'echo' : js ? 'tapwire (JS path)' : 'tapwire',
      usCpuPerExchange: Number(used.toFixed(2)),
      usWallPerExchange: Number(wall.toFixed(2)),
    }),
  );
  child.kill();
  process.exit(0);
}

if (process.argv.includes('--client')) client();
else
  main().catch((e: unknown) => {
    process.stderr.write(`dhcp-loopback-cpu: ${(e as Error).message}\n`);
    process.exit(1);
  });
