// A Unix datagram socket standing in for systemd's notify socket: NOTIFY_SOCKET points at
// it, and each datagram a daemon sends is parsed into its KEY=VALUE fields. Node has no
// Unix datagram sockets, so a python3 child binds and reads it (a path, or '@name' for an
// abstract socket, as systemd may hand out) and prints each datagram as a JSON line.
import { spawn, type ChildProcess } from 'node:child_process';

const READER = `import json,socket,sys
name=sys.argv[1]
s=socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind('\\0'+name[1:] if name.startswith('@') else name)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
print('ready', flush=True)
while True:
    data, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(12))
    pid = next((int.from_bytes(d[0:4], 'little') for l, t, d in anc if t == socket.SCM_CREDENTIALS), None)
    print(json.dumps({'pid': pid, 'text': data.decode()}), flush=True)
`;

export interface NotifyMessage {
  /** the sender's pid (SCM_CREDENTIALS), as systemd checks it for NotifyAccess=main */
  pid: number;
  fields: Record<string, string>;
}

export class NotifySocket {
  readonly messages: NotifyMessage[] = [];
  private constructor(
    readonly address: string,
    private readonly child: ChildProcess,
  ) {}

  static async open(address: string): Promise<NotifySocket> {
    const child = spawn('python3', ['-c', READER, address], { stdio: ['ignore', 'pipe', 'pipe'] });
    const sock = new NotifySocket(address, child);
    let buf = '';
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    await new Promise<void>((resolve, reject) => {
      child.on('exit', () => reject(new Error(`notify reader ended: ${err}`)));
      child.stdout!.on('data', (d: Buffer) => {
        buf += d.toString();
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (line === 'ready') resolve();
          else {
            const { pid, text } = JSON.parse(line) as { pid: number; text: string };
            const fields = Object.fromEntries(
              text.split('\n').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
            );
            sock.messages.push({ pid, fields });
          }
        }
      });
    });
    return sock;
  }

  /** Resolves with the first message (in order of arrival) that has the field, waiting up to ms. */
  async waitFor(key: string, value?: string, ms = 20_000): Promise<NotifyMessage> {
    const end = Date.now() + ms;
    for (;;) {
      const m = this.messages.find((x) => key in x.fields && (value === undefined || x.fields[key] === value));
      if (m) return m;
      if (Date.now() > end) throw new Error(`no ${key}${value ? `=${value}` : ''} in ${JSON.stringify(this.messages)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  close(): void {
    this.child.kill('SIGKILL');
  }
}
