// Listings of the Admin API through the npm portkey-ai package, paged as it pages them (snake_case, where the
// Python SDK writes workspaces' paging in camelCase): one entry a page.
import { Portkey } from 'portkey-ai'

const portkey = new Portkey({ apiKey: process.env.ADMIN_TOKEN, baseURL: process.env.GATEWAY_URL })

async function main() {
  const calls = {
    workspaces: () => portkey.admin.workspaces.list({ page_size: 1, current_page: 1 }),
    apiKeys: () => portkey.apiKeys.list({ page_size: 1, current_page: 0 }),
    providers: () => portkey.providers.list({ page_size: 1, current_page: 0 }),
  };
  for (const [name, call] of Object.entries(calls)) {
    try {
      const page = await call();
      console.log(JSON.stringify({ name, total: page.total, shown: page.data.length }));
    } catch (error) {
      console.log(JSON.stringify({ name, status: error.status, message: error.error?.message ?? String(error) }));
    }
  }
}

main();
