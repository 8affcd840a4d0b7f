/**
 * The `source-ip` key: the client address as text. An IPv4-mapped IPv6 address
 * (a dual-stack listener's view of an IPv4 client) becomes its dotted IPv4 form, so
 * one client hashes alike on `0.0.0.0` and `[::]` listeners. Node already gives IPv6
 * in compressed lower-case form.
 */
export function sourceIpKey(address: string): string {
  if (address.length > 7 && address.charCodeAt(0) === 58 /* : */ && address.startsWith('::ffff:') && address.includes('.')) {
    return address.slice(7);
  }
  return address;
}
