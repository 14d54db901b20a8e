# One image for the worker, the HTTP service and the sandbox; docker-compose.yml picks the command.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# No scripts: `prepare` would compile sources that are not copied yet (they are compiled below).
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY . .
RUN npx tsc -p tsconfig.build.json && node dist/src/cli.js bundle

# The production dependencies. The package takes @temporalio/* as peers, which an app supplies; this
# image is such an app, so the versions the project pins (its dev dependencies) become dependencies.
FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN node -e " \
      const fs = require('fs'); const p = JSON.parse(fs.readFileSync('package.json', 'utf8')); \
      for (const name of Object.keys(p.peerDependencies)) { \
        p.dependencies[name] = p.devDependencies[name]; delete p.devDependencies[name]; \
      } \
      fs.writeFileSync('package.json', JSON.stringify(p));" \
  && npm install --omit=dev --ignore-scripts --no-audit --no-fund

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app/package.json ./
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/scripts ./scripts
USER node
ENTRYPOINT ["node", "dist/src/cli.js"]
CMD ["worker"]
