// The cloud case (run by netns.sh nat): parlor binds 10.77.0.1 and announces 198.51.100.7, which a 1:1 NAT
// (iptables DNAT in parlor's namespace) maps to it. Two Chromium pages in another namespace must decode each
// other's video over UDP, with the announced address as the remote end of the selected pair.

import { differences, twoPagesOverThisPath } from './netns_lib.mjs';

await twoPagesOverThisPath('nat', (pair) => [
  ...differences('remote', pair.remote, { protocol: 'udp', address: '198.51.100.7', port: 50000 }),
  ...differences('local', pair.local, { protocol: 'udp' }),
]);
