// The raw surface of the native addon (native/*.cc), declared once. Every call is
// synchronous; failures throw a NativeError.

export interface RecvResult {
  data: Buffer;
  fds: number[];
}

export interface PeerCred {
  pid: number;
  uid: number;
  gid: number;
}

export interface TapOptions {
  vnetHdr?: boolean;
  multiQueue?: boolean;
  queues?: number;
  persist?: boolean;
  /** make a new tap only: EBUSY when a link has the name (IFF_TUN_EXCL) */
  create?: boolean;
  /** the new tap's interface index (TUNSETIFINDEX; with create): EBUSY when taken */
  ifindex?: number;
}

export interface TapInfo {
  name: string;
  vnetHdr: boolean;
  multiQueue: boolean;
  persist: boolean;
}

export interface Binding {
  sendFds(sockFd: number, data: Buffer, fds: number[]): number;
  recvFds(sockFd: number, maxBytes: number, maxFds: number): RecvResult;
  unixConnect(path: string, timeoutMs?: number): number;
  peerCred(fd: number): PeerCred;
  socketNetnsCookie(fd: number): bigint;
  netnsCookie(): bigint;
  closeFd(fd: number): void;
  unixStreamPair(): [number, number];
  peerClosed(fd: number): boolean;
  execve(path: string, argv: string[], env: string[], keepFds: number[]): never;
  withNetns<T>(netns: string | number, fn: (hostNsFd: number) => T): T;
  netnsInode(): number;
  openTap(name: string, opts: TapOptions): number[];
  tapSetPersist(fd: number, on: boolean): void;
  tapInfo(fd: number): TapInfo;
  bindMount(source: string, target: string): void;
  udpSocketBoundToDevice(ifname: string, port: number): number;
  udp6SocketBoundToDevice(ifname: string, port: number): number;
  icmp6Open(ifname: string): number;
  sock6Watch(fd: number, cb: (data: Buffer, from: string, port: number, hopLimit: number) => void): void;
  sock6Close(fd: number): void;
  sock6Send(fd: number, dst: string, port: number, src: string, data: Buffer): void;
  sock4Watch(fd: number, buf: Buffer, cb: (length: number, from: number, port: number) => void): void;
  sock4Close(fd: number): void;
  sock4Send(fd: number, dst: string, port: number, data: Buffer): number;
  sock4Answer(
    fd: number,
    slot: number,
    request: Buffer,
    reply: Buffer,
    dst: string,
    port: number,
    varyFrom: number,
    varyTo: number,
    copyFrom: number,
    copyTo: number,
    ttlMs: number,
    usedAt: number,
  ): void;
  sock4Answered(fd: number, out: Float64Array): number;
  sock4Forget(fd: number): void;
  socketPort(fd: number): number;
  unixDatagramSend(path: string, data: Buffer): void;
  ifIndex(ifname: string): number;
  nftRun(script: string, json: boolean): NftRunResult;
  nftRunIn(netns: string, script: string, json: boolean): Promise<NftRunResult>;
  netlinkBatchIn(netns: string, protocol: number, messages: Buffer): Promise<NetlinkReply[]>;
  netlinkSocketHere(protocol: number): number;
  netlinkDump(fd: number, request: Buffer, maxBytes: number): Buffer;
  netlinkDumpEach(
    items: DumpItem[],
    protocol: number,
    maxBytes: number,
    timeoutMs: number,
  ): Promise<(Buffer | Error)[]>;
}

export interface DumpItem {
  /** path of the network namespace */
  netns: string;
  /** its SO_NETNS_COOKIE, decimal: another namespace at the path is not read (ESTALE) */
  cookie?: string;
  /** one whole netlink dump request */
  request: Buffer;
}

export interface NetlinkReply {
  /** sequence number of the message this answers */
  seq: number;
  /** 0 for an ack, else the errno the kernel refused it with */
  error: number;
  /** the kernel's extended ack text, when it gave one */
  message?: string;
}

export interface NftRunResult {
  /** libnftables' return: 0 when every command succeeded */
  rc: number;
  /** what nft would print on stdout */
  output: string;
  /** what nft would print on stderr */
  error: string;
}
