// The report's per-run details: texts packed outside the heap come back
// exactly (lone surrogates too), and a page written piece by piece to a file
// has the bytes of the page rendered as one string.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TextPacker } from '../stages/report/run-details.ts';
import { renderHtmlReport, writeHtmlReport } from '../stages/report/html.ts';
import { writeTextAtomicSync } from '../stages/util/fs.ts';
import { fixtureInput } from './fixtures/report-html/fixture.ts';

describe('TextPacker', () => {
  it('gives back every text exactly', () => {
    const packer = new TextPacker();
    const texts = [
      { original_instruction: '', perturbed_instruction: 'plain ascii', summary: 'caf\u00e9 \u2019quoted\u2019 \u{1F600}' },
      { original_instruction: 'lone \ud800 high', perturbed_instruction: 'lone \udc00 low', summary: 'pair \ud83d\ude00 then lone \ude00' },
      { original_instruction: 'x'.repeat(9 * 1024 * 1024), perturbed_instruction: '\u0000\u2028', summary: '' },
    ];
    const packed = texts.map((t) => packer.pack(t));
    packed.forEach((p, i) => {
      expect(p.original_instruction).toBe(texts[i]!.original_instruction);
      expect(p.perturbed_instruction).toBe(texts[i]!.perturbed_instruction);
      expect(p.summary).toBe(texts[i]!.summary);
    });
  });
});

describe('writeTextAtomicSync', () => {
  it('writes the pieces in order, small and larger than its buffer', () => {
    const dir = mkdtempSync(join(tmpdir(), 'text-pieces-'));
    try {
      const file = join(dir, 'out.txt');
      const pieces = ['\u00e9'.repeat(3 * 1024 * 1024), '\u{1F600}', 'y'.repeat(5 * 1024 * 1024), '', 'end\n'];
      writeTextAtomicSync(file, (write) => pieces.forEach(write));
      expect(readFileSync(file, 'utf8')).toBe(pieces.join(''));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('writeHtmlReport', () => {
  it('writes the bytes renderHtmlReport returns', () => {
    const dir = mkdtempSync(join(tmpdir(), 'report-pieces-'));
    try {
      const file = join(dir, 'report.html');
      writeTextAtomicSync(file, (write) => writeHtmlReport(fixtureInput(), write));
      expect(readFileSync(file).equals(Buffer.from(renderHtmlReport(fixtureInput()), 'utf8'))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
