/** One CIDR block, parsed (net/cidr.ts). */
export interface Cidr {
  readonly source: string;
  readonly family: 4 | 6;
  /** Network address as 16 bytes (IPv4 mapped into ::ffff:0:0/96). */
  readonly bytes: Uint8Array;
  /** Prefix length over the 128-bit form. */
  readonly prefix: number;
}
