"""The bottom layer: what every other layer may use and which uses nothing of the lab.

- `rng`: seeding (every generator of a run derives from its seed and a purpose);
- `stats`: the intervals every number of the lab carries (Wilson, Newcombe, Welch, the z constant) and
  how they are printed;
- `scoring`: the pure scoring rules (the classes, agreement with templates, the one-template verdict,
  packing and unpacking decisions);
- `native`: compiling the C kernels (training, prior sampling) on first use;
- `schema`: the results schema (every stored column, its type and meaning; the trajectory keys).

docs/architecture.md shows the layers above.
"""
