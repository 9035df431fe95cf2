// world: transform-plugin
// Hostile test guest: loops forever on the first batch; the deadline must stop it.
export const transform = {
  describe: () => ({ name: "js-spin-loop", version: "0.1.0", description: "Never returns (test guest)" }),
  open() {},
  process() {
    let n = 0;
    for (;;) n++;
  },
};
