/**
 * `anyserve k8s dockerfile`: the app image the rendered manifests run — Node, the app and its
 * dependencies (anyserve among them), `anyserve` on the PATH. The command and arguments come from
 * the manifests (render.ts), not from the image.
 *
 * @example
 * ```ts
 * writeFileSync("Dockerfile", dockerfile({ appDir: "/app" }));
 * ```
 */

/** The app image's Dockerfile, with the app at `appDir` (default `/app`, render.ts's default too). */
export function dockerfile(o: { appDir?: string } = {}): string {
  const dir = o.appDir ?? "/app";
  return `# The app image for anyserve on Kubernetes (anyserve k8s dockerfile > Dockerfile).
# Build it from the app's directory, whose package.json depends on anyserve.
FROM node:20-slim
WORKDIR ${dir}
COPY package*.json ./
RUN npm ci --omit=dev || npm install --omit=dev
COPY . .
ENV PATH=${dir}/node_modules/.bin:$PATH NODE_ENV=production
# The command and arguments come from the rendered manifests (anyserve api-server / anyserve start).
ENTRYPOINT []
`;
}
