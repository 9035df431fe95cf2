// world: transform-plugin
// Hostile test guest: keeps allocating 16 MiB blocks; the memory cap must refuse it.
const hoard = [];
export const transform = {
  describe: () => ({ name: "js-memory-bomb", version: "0.1.0", description: "Allocates without end (test guest)" }),
  open() {},
  process() {
    for (;;) hoard.push(new Uint8Array(16 << 20).fill(1));
  },
};
