// @tus/server with @tus/s3-store, as its README sets it up (8 MiB parts), pointed at an
// S3-compatible endpoint: the Node.js peer of the benchmark's S3 workloads.
// Usage: node tus_s3_server.mjs PORT   (bench/servers.py starts it on 127.0.0.1)
// Environment: AWS_BUCKET, AWS_REGION, AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY.
import { Server } from '@tus/server';
import { S3Store } from '@tus/s3-store';

const [port] = process.argv.slice(2);
const { AWS_BUCKET, AWS_REGION, AWS_ENDPOINT_URL } = process.env;
if (!port || !AWS_BUCKET || !AWS_REGION || !AWS_ENDPOINT_URL) {
  console.error('usage: AWS_BUCKET=... AWS_REGION=... AWS_ENDPOINT_URL=... node tus_s3_server.mjs PORT');
  process.exit(2);
}
const s3Store = new S3Store({
  partSize: 8 * 1024 * 1024,
  s3ClientConfig: {
    bucket: AWS_BUCKET,
    region: AWS_REGION,
    endpoint: AWS_ENDPOINT_URL,
    forcePathStyle: true,
    credentials: {
      accessKeyId: process.env.AWS_ACCESS_KEY_ID,
      secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY,
    },
  },
});
const server = new Server({ path: '/files', datastore: s3Store });
const listener = server.listen({ host: '127.0.0.1', port: Number(port) });
listener.on('error', (error) => {
  console.error(`tus_s3_server: ${error.message}`);
  process.exit(1);
});
process.on('SIGTERM', () => listener.close(() => process.exit(0)));
