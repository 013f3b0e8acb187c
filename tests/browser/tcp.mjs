// UDP blocked (run by netns.sh tcp): iptables drops UDP to parlor's media port, so two Chromium pages in
// another namespace must decode each other's video over ICE-TCP: the selected pair is TCP, the browser's end
// active, parlor's end its passive candidate on the TCP port.

import { differences, twoPagesOverThisPath } from './netns_lib.mjs';

await twoPagesOverThisPath('tcp', (pair) => [
  ...differences('remote', pair.remote, { protocol: 'tcp', address: '10.78.0.1', port: 50000, tcpType: 'passive' }),
  ...differences('local', pair.local, { protocol: 'tcp' }),
]);
