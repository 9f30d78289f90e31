import t from 'tap';
import { cell, keyValues, table } from '../../src/cli/table.js';

t.test('table: columns padded to the widest cell, the last one not padded, no trailing spaces', async (t) => {
  const out = table(['ENTITY', 'STATUS', 'NOTE'], [
    ['alice', 'active', 'x'],
    ['bob', 'needs_reauth', ''],
  ]);
  t.equal(out, 'ENTITY  STATUS        NOTE\nalice   active        x\nbob     needs_reauth\n');
});

t.test('table: no rows prints nothing (not a lone header)', async (t) => {
  t.equal(table(['A'], []), '');
});

t.test('table: a short row is padded, not an error', async (t) => {
  t.equal(table(['A', 'B', 'C'], [['1']]), 'A  B  C\n1\n');
});

t.test('keyValues: keys aligned after their colon', async (t) => {
  t.equal(keyValues([['entity', 'alice'], ['status', 'active']]), 'entity:  alice\nstatus:  active\n');
  t.equal(keyValues([['a', '1'], ['long', '2']]), 'a:     1\nlong:  2\n');
});

t.test('cell: nothing is "-", lists and objects are joined', async (t) => {
  for (const v of [null, undefined, '', [], {}]) t.equal(cell(v), '-', JSON.stringify(v) ?? 'undefined');
  t.equal(cell(['read', 'write']), 'read,write');
  t.equal(cell({ team: 'a', tier: ['x', 'y'] }), 'team=a,tier=x,y');
  t.equal(cell(3), '3');
  t.equal(cell(false), 'false');
});
