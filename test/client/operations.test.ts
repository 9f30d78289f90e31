import t from 'tap';
import { openApiDocument } from '../../src/api/openapi.js';
import { CredproxyClient } from '../../src/client/index.js';

/** What the client leaves out on purpose: a scrape endpoint and the pages a browser opens. */
const NOT_IN_CLIENT = new Set(['metrics', 'connectCallback', 'connectPage', 'connectContinue', 'connectLogo']);

t.test("the client's methods are the document's operations: neither can drift", async (t) => {
  const doc = openApiDocument() as { paths: Record<string, Record<string, { operationId: string }>> };
  const documented = Object.values(doc.paths).flatMap((p) => Object.values(p).map((o) => o.operationId));
  const mapped = Object.keys(CredproxyClient.operations);
  t.same(mapped.sort(), documented.filter((id) => !NOT_IN_CLIENT.has(id)).sort(), 'every operation has a client method, and every method an operation');
  const client = new CredproxyClient({ adminToken: 'x' });
  for (const [id, method] of Object.entries(CredproxyClient.operations)) {
    const fn = method.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], client);
    t.type(fn, 'function', `${id} → client.${method}`);
  }
  await client.close();
});
