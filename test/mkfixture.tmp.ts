import pino from 'pino';
import type { Settings } from '../src/config/types.js';
import { openStore } from '../src/store/open.js';
import { fill } from './support/store-data.js';
const { store } = await openStore({ store: 'sqlite:/tmp/tmp.Xh5K5BC0d6/data/credproxy.db', store_prefix: 'credproxy' } as Settings, {}, pino({ level: 'silent' }));
await fill(store);
await store.close();
