import assert from "node:assert/strict";
import { test } from "node:test";
import { DATATYPE_INFO, bfloat16Bits, bfloat16Value, float16Bits, float16Value, isDatatype } from "../../src/protocol/datatypes.js";
import { ALL_DATATYPES } from "./helpers.js";

test("the table has a row for all 14 datatypes with the right sizes and contents fields", () => {
  assert.equal(ALL_DATATYPES.length, 14);
  const sizes = ALL_DATATYPES.map((dt) => DATATYPE_INFO[dt].size);
  assert.deepEqual(sizes, [1, 1, 2, 4, 8, 1, 2, 4, 8, 2, 4, 8, 0, 2]);
  assert.equal(DATATYPE_INFO.INT8.contents, "int_contents");
  assert.equal(DATATYPE_INFO.UINT16.contents, "uint_contents");
  assert.equal(DATATYPE_INFO.FP16.contents, null);
  assert.equal(DATATYPE_INFO.BF16.contents, null);
  assert.equal(DATATYPE_INFO.BYTES.contents, "bytes_contents");
  assert.equal(DATATYPE_INFO.INT64.array, BigInt64Array);
  for (const dt of ALL_DATATYPES) {
    const a = DATATYPE_INFO[dt].array;
    if (a) assert.equal(a.BYTES_PER_ELEMENT, DATATYPE_INFO[dt].size, dt);
  }
  assert.ok(isDatatype("FP32"));
  assert.ok(!isDatatype("fp32"));
  assert.ok(!isDatatype("FP128"));
});

test("FP16: known values, specials and overflow", () => {
  const cases: Array<[number, number]> = [
    [1, 0x3c00],
    [-2, 0xc000],
    [65504, 0x7bff],
    [65519, 0x7bff],
    [65520, 0x7c00],
    [1e6, 0x7c00],
    [Infinity, 0x7c00],
    [-Infinity, 0xfc00],
    [0, 0x0000],
    [-0, 0x8000],
    [2 ** -24, 0x0001],
    [2 ** -14, 0x0400],
    [0.1, 0x2e66],
    [2 ** -25, 0x0000],
    [3 * 2 ** -25, 0x0002],
    [1 + 2 ** -11, 0x3c00],
    [1 + 3 * 2 ** -11, 0x3c02],
  ];
  for (const [x, bits] of cases) assert.equal(float16Bits(x), bits, `float16Bits(${x})`);
  assert.equal(float16Bits(NaN) & 0x7c00, 0x7c00);
  assert.ok(Number.isNaN(float16Value(0x7e00)));
  assert.equal(float16Value(0x7bff), 65504);
  assert.ok(Object.is(float16Value(0x8000), -0));
});

function checkExhaustive(toBits: (x: number) => number, toValue: (b: number) => number, expMask: number): void {
  for (let b = 0; b < 0x10000; b++) {
    const nan = (b & expMask) === expMask && (b & ~expMask & 0x7fff) !== 0;
    if (nan) continue;
    assert.equal(toBits(toValue(b)), b, `bits 0x${b.toString(16)}`);
  }
  // Every midpoint between neighbours rounds to the even one; just off the midpoint rounds to the nearer.
  for (let b = 0; b < expMask - 1; b++) {
    const lo = toValue(b);
    const hi = toValue(b + 1);
    const mid = (lo + hi) / 2;
    assert.equal(toBits(mid), b % 2 === 0 ? b : b + 1, `midpoint after 0x${b.toString(16)}`);
    const eps = (hi - lo) / 1024;
    assert.equal(toBits(mid - eps), b);
    assert.equal(toBits(mid + eps), b + 1);
  }
}

test("FP16: every finite bit pattern round trips and midpoints round to even", () => {
  checkExhaustive(float16Bits, float16Value, 0x7c00);
});

test("BF16: every finite bit pattern round trips and midpoints round to even", () => {
  checkExhaustive(bfloat16Bits, bfloat16Value, 0x7f80);
});

test("BF16 matches round-to-nearest-even of the float32 bits", () => {
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  let seed = 12345;
  for (let i = 0; i < 20000; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    u[0] = seed ^ (i << 7);
    if (Number.isNaN(f[0])) continue;
    const bits = u[0]!;
    const expected = ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
    assert.equal(bfloat16Bits(f[0]!), expected, `float32 bits 0x${bits.toString(16)}`);
  }
  assert.equal(bfloat16Bits(1), 0x3f80);
});
