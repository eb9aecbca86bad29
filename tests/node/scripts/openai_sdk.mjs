// The plain `openai` Node SDK through the gateway: Portkey's headers as default headers. Chat, then streamed.
import OpenAI from 'openai'

const client = new OpenAI({
  apiKey: "YOUR_AUTH_TOKEN",
  baseURL: process.env.GATEWAY_URL,
  defaultHeaders: { "x-portkey-provider": "openai", "x-portkey-custom-host": process.env.MODEL_SERVER_URL },
})
const response = await client.chat.completions.create({
  messages: [{ role: "user", content: "openai sdk" }],
  model: "YOUR_MODEL_NAME",
});
console.log(JSON.stringify({ content: response.choices[0].message.content }));
const stream = await client.chat.completions.create({
  messages: [{ role: "user", content: "stream me" }],
  model: "YOUR_MODEL_NAME",
  stream: true,
});
let text = "";
for await (const chunk of stream) text += chunk.choices[0]?.delta?.content || "";
console.log(JSON.stringify({ streamed: text }));
