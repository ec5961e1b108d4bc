// @tus/server with @tus/file-store, as its README sets it up: the Node.js peer of the benchmark.
// Usage: node tus_server.mjs PORT DIRECTORY   (bench/servers.py starts it on 127.0.0.1)
import { Server } from '@tus/server';
import { FileStore } from '@tus/file-store';

const [port, directory] = process.argv.slice(2);
if (!port || !directory) {
  console.error('usage: node tus_server.mjs PORT DIRECTORY');
  process.exit(2);
}
const server = new Server({ path: '/files', datastore: new FileStore({ directory }) });
const listener = server.listen({ host: '127.0.0.1', port: Number(port) });
listener.on('error', (error) => {
  console.error(`tus_server: ${error.message}`);
  process.exit(1);
});
process.on('SIGTERM', () => listener.close(() => process.exit(0)));
