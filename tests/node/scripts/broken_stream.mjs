// A stream the upstream cuts after it started, read as the Node SDKs' users read one: the gateway's closing
// error event must raise in both packages (portkey-ai only raises on an event named "error").
import { Portkey } from 'portkey-ai'
import OpenAI from 'openai'

const headers = { "x-portkey-provider": "openai", "x-portkey-custom-host": process.env.MODEL_SERVER_URL };
const clients = {
  "portkey-ai": new Portkey({ baseURL: process.env.GATEWAY_URL, provider: "openai",
                              customHost: process.env.MODEL_SERVER_URL }),
  "openai": new OpenAI({ apiKey: "k", baseURL: process.env.GATEWAY_URL, defaultHeaders: headers, maxRetries: 0 }),
};

async function main() {
  for (const [name, client] of Object.entries(clients)) {
    let text = "";
    try {
      const stream = await client.chat.completions.create({
        model: "m", stream: true, messages: [{ role: "user", content: "x" }] });
      for await (const chunk of stream) text += chunk.choices[0].delta.content || "";
      console.log(JSON.stringify({ name, text, raised: null }));
    } catch (error) {
      console.log(JSON.stringify({ name, text, raised: error.constructor.name, message: String(error.message) }));
    }
  }
}

main();
