import t from 'tap';
import {
  callersOf,
  inclusiveCosts,
  namesReport,
  parseCallgrind,
  parseNamesOptions,
  parsePerfMap,
  perfName,
  top,
} from '../../bench/callgrind-names.js';

// handle (entered at 0x1000, 0x1050 and 0x1008) -> parse (0x1100) -> write (0x2040) -> handle again;
// handle also calls Builtins_LoadIC, and itself; 0x1190 is in no perf map entry.
const CALLGRIND = [
  'version: 1',
  'creator: callgrind-3.19.0',
  'positions: line',
  'events: Ir',
  'summary: 0',
  '',
  'ob=(1) /usr/bin/node',
  'fl=(1) ???',
  'fn=(1) 0x0000000000001000',
  '0 100',
  'cfn=(2) 0x0000000000001100',
  'calls=2 0',
  '0 460',
  'cfn=(3) Builtins_LoadIC [/usr/bin/node]',
  'calls=1 0',
  '0 40',
  'cfn=(7) 0x0000000000001050',
  'calls=1 0',
  '0 5',
  'fn=(7)',
  '0 5',
  'fn=(2)',
  '0 300',
  'cfn=(4) 0x0000000000002040',
  'calls=1 0',
  '0 160',
  'fn=(3)',
  '* 30',
  '+2 10',
  'fn=(4)',
  '0 150',
  'cfn=(5) 0x0000000000001008',
  'calls=1 0',
  '0 10',
  'fn=(5)',
  '-1 10',
  'fn=(6) 0x0000000000001190',
  '0 7',
  'totals: 612',
  '',
].join('\n');

// sizes are hex too; the first 2000 entry was overwritten by newer code at the same address
const PERF_MAP = [
  '1000 100 JS:*handle /x/a.js:1:1',
  '1100 80 JS:~parse /x/b.js:2:2',
  '2000 100 JS:*old /x/c.js:9:9',
  '2000 80 JS:*write /x/c.js:3:3',
  'not a line of a perf map',
  '',
].join('\n');

t.test('options: the file, defaults, bad values refused', async (t) => {
  t.same(parseNamesOptions(['p/current.callgrind']), { file: 'p/current.callgrind', map: undefined, requests: undefined, top: 30, match: undefined, callers: [] });
  t.same(parseNamesOptions(['f', '--map', 'm', '--requests', '40', '--top', '5', '--match', 'JS:', '--callers', 'LoadIC,StoreIC']), {
    file: 'f',
    map: 'm',
    requests: 40,
    top: 5,
    match: 'JS:',
    callers: ['LoadIC', 'StoreIC'],
  });
  t.throws(() => parseNamesOptions([]), /one callgrind file expected, 0 given/);
  t.throws(() => parseNamesOptions(['a', 'b']), /one callgrind file expected, 2 given/);
  t.throws(() => parseNamesOptions(['f', '--top', '0']), /--top: "0" is not a positive whole number/);
  t.throws(() => parseNamesOptions(['f', '--requests', '2.5']), /--requests: "2.5" is not a positive whole number/);
  t.throws(() => parseNamesOptions(['f', '--bogus']), /Unknown option '--bogus'/);
});

t.test('perf map: an address is named by the entry holding it; anything else is left as it is', async (t) => {
  const map = parsePerfMap(PERF_MAP);
  t.same(map.starts, [0x1000n, 0x1100n, 0x2000n], 'sorted, one entry per start');
  t.equal(perfName(map, '0x0000000000001000'), 'JS:*handle /x/a.js:1:1', 'the start itself');
  t.equal(perfName(map, '0x00000000000010ff'), 'JS:*handle /x/a.js:1:1', 'the last byte');
  t.equal(perfName(map, '???:0x0000000000001100'), 'JS:~parse /x/b.js:2:2', 'as callgrind_annotate prints it');
  t.equal(perfName(map, '0x0000000000002040'), 'JS:*write /x/c.js:3:3', 'of two entries at one start, the last written');
  t.equal(perfName(map, '0x0000000000001190'), '0x0000000000001190', 'past the end of the entry before it');
  t.equal(perfName(map, '0x0000000000000fff'), '0x0000000000000fff', 'before the first entry');
  t.equal(perfName(map, 'Builtins_LoadIC [/usr/bin/node]'), 'Builtins_LoadIC [/usr/bin/node]', 'a symbol');
  t.equal(perfName(parsePerfMap(''), '0x1000'), '0x1000', 'an empty map');
});

t.test('parseCallgrind: self costs and calls, by compressed names, without and with the perf map', async (t) => {
  const raw = parseCallgrind(CALLGRIND);
  t.equal(raw.total, 612, 'the self costs add up to the totals line');
  t.equal(raw.self.get('0x0000000000001000'), 100);
  t.equal(raw.self.get('Builtins_LoadIC [/usr/bin/node]'), 40, 'the * and + positions of one function');
  t.equal(raw.self.get('0x0000000000001008'), 10, 'a name first defined by cfn=');
  t.equal(raw.calls.get('0x0000000000001000')?.get('0x0000000000001100'), 460, 'a call line is the call, not the caller');

  const map = parsePerfMap(PERF_MAP);
  const p = parseCallgrind(CALLGRIND, (n) => perfName(map, n));
  t.same(
    Object.fromEntries(p.self),
    {
      'JS:*handle /x/a.js:1:1': 115,
      'JS:~parse /x/b.js:2:2': 300,
      'Builtins_LoadIC [/usr/bin/node]': 40,
      'JS:*write /x/c.js:3:3': 150,
      '0x0000000000001190': 7,
    },
    'the three entry points of handle added up',
  );
  t.equal(p.total, 612);
  t.same(Object.fromEntries(p.calls.get('JS:*handle /x/a.js:1:1')!), {
    'JS:~parse /x/b.js:2:2': 460,
    'Builtins_LoadIC [/usr/bin/node]': 40,
    'JS:*handle /x/a.js:1:1': 5,
  });

  t.same(
    Object.fromEntries(inclusiveCosts(p)),
    {
      // 115 + 460 + 40, not + 5 (its call to itself); the 10 of handle inside write is in both 115 and 460
      'JS:*handle /x/a.js:1:1': 615,
      'JS:~parse /x/b.js:2:2': 460,
      'Builtins_LoadIC [/usr/bin/node]': 40,
      'JS:*write /x/c.js:3:3': 160,
      '0x0000000000001190': 7,
    },
    'self + calls to other functions',
  );
  t.same(Object.fromEntries(callersOf(p, 'LoadIC')), { 'JS:*handle /x/a.js:1:1': 40 });
  t.same(top(p.self, 2), [
    ['JS:~parse /x/b.js:2:2', 300],
    ['JS:*write /x/c.js:3:3', 150],
  ]);
});

t.test('parseCallgrind: with two position columns, the count is the third', async (t) => {
  t.same(Object.fromEntries(parseCallgrind('positions: instr line\nevents: Ir\nfn=(1) f\n0x10 3 7\n+3 * 2\n').self), { f: 9 });
});

t.test('namesReport: per request, with shares of the total', async (t) => {
  const map = parsePerfMap(PERF_MAP);
  const p = parseCallgrind(CALLGRIND, (n) => perfName(map, n));
  t.equal(
    namesReport(p, { requests: 2, top: 2, callers: ['LoadIC'] }),
    [
      '306 instructions per request (2 requests) in all',
      '',
      'by self cost (top 2):',
      '         150  49.0%  JS:~parse /x/b.js:2:2',
      '          75  24.5%  JS:*write /x/c.js:3:3',
      '',
      'by inclusive cost, self + calls (top 2):',
      '         308 100.5%  JS:*handle /x/a.js:1:1',
      '         230  75.2%  JS:~parse /x/b.js:2:2',
      '',
      'callers of LoadIC (cost of the calls):',
      '          20   6.5%  JS:*handle /x/a.js:1:1',
      '',
    ].join('\n'),
  );
  t.match(namesReport(p, { requests: 1, top: 1, callers: [] }), /^612 instructions in all\n/);
  t.equal(
    namesReport(p, { requests: 1, top: 5, match: 'write', callers: [] }),
    [
      '612 instructions in all',
      '',
      'by self cost (top 5):',
      '         150  24.5%  JS:*write /x/c.js:3:3',
      '',
      'by inclusive cost, self + calls (top 5):',
      '         160  26.1%  JS:*write /x/c.js:3:3',
      '',
    ].join('\n'),
    '--match: only the functions whose name has it; the total stays the whole',
  );
});
