// unit_convert: a forge tool written in JavaScript.
//
// Input "<number> <unit> to <unit>" (or "in"), e.g. "12 km to mi"; output
// "12 km = 7.45645 mi" (6 significant digits). Lengths, masses and
// temperatures. Built into a WebAssembly component by componentize-js
// against the `tool` world of forge's contract
// (scripts/build-js-plugins.sh); an agent calls it as unit_convert[...].

// Factors to the base unit of each dimension (metre, kilogram).
const LINEAR = {
  m: ["length", 1], km: ["length", 1000], cm: ["length", 0.01], mm: ["length", 0.001],
  mi: ["length", 1609.344], ft: ["length", 0.3048], in: ["length", 0.0254], yd: ["length", 0.9144],
  kg: ["mass", 1], g: ["mass", 0.001], lb: ["mass", 0.45359237], oz: ["mass", 0.028349523125],
};
// Temperatures: to and from kelvin.
const TEMPERATURE = {
  c: [(x) => x + 273.15, (k) => k - 273.15],
  f: [(x) => (x - 32) * 5 / 9 + 273.15, (k) => (k - 273.15) * 9 / 5 + 32],
  k: [(x) => x, (k) => k],
};

// A guest-visible error: the host stores it with the tool call (a plain
// `throw new Error` would be a trap).
function invalid(message) {
  return { tag: "invalid-input", val: message };
}

function convert(n, from, to) {
  if (from in TEMPERATURE && to in TEMPERATURE) {
    return TEMPERATURE[to][1](TEMPERATURE[from][0](n));
  }
  const a = LINEAR[from];
  const b = LINEAR[to];
  if (!a || !b) {
    throw invalid(`unknown unit: ${!a ? from : to} (known: ${[...Object.keys(LINEAR), "c", "f", "k"].join(", ")})`);
  }
  if (a[0] !== b[0]) throw invalid(`cannot convert ${a[0]} (${from}) to ${b[0]} (${to})`);
  return (n * a[1]) / b[1];
}

export const toolProvider = {
  describe() {
    return "unit_convert[<number> <unit> to <unit>]: converts lengths (m, km, cm, mm, mi, ft, in, yd), masses (kg, g, lb, oz) and temperatures (c, f, k), e.g. unit_convert[12 km to mi]";
  },
  call(input, params) {
    const m = /^\s*(-?\d+(?:\.\d+)?)\s*([a-z]+)\s+(?:to|in)\s+([a-z]+)\s*$/i.exec(input);
    if (!m) throw invalid(`expected "<number> <unit> to <unit>", got ${JSON.stringify(input)}`);
    const [, n, from, to] = m;
    const v = convert(Number(n), from.toLowerCase(), to.toLowerCase());
    return `${n} ${from} = ${Number(v.toPrecision(6))} ${to}`;
  },
};
