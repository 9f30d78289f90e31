// A tiny upstream for trying credproxy: answers every request with what it received.
//   node examples/echo-server.mjs [port]   (default 9999)
import http from 'node:http';

const port = Number(process.argv[2] ?? 9999);
http
  .createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') }, null, 2);
      res.writeHead(200, { 'content-type': 'application/json' }).end(`${body}\n`);
    });
  })
  .listen(port, '127.0.0.1', () => console.log(`echo server on http://127.0.0.1:${port}`));
