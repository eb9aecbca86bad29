// "Using Forward Headers in Gateway Configs" through the Node SDK's `config:`: the seed's fallback config
// (its hosts pointed at the fakes by the test) and the custom headers as the SDK's camelCase options, not
// listed in the client's own forwardHeaders. Chat, then streamed.
import { Portkey } from 'portkey-ai'

const portkey = new Portkey({
    apiKey: "PORTKEY_API_KEY",
    baseURL: process.env.GATEWAY_URL,
    config: JSON.parse(process.env.GATEWAY_CONFIG),
    Authorization: "Bearer sk_live_private_0a1b2c",
    xApiKey: "sensitive-key-value-77",
    xCustomToken: "custom-token-value-88",
})

const response = await portkey.chat.completions.create({
  messages: [{ role: "user", content: "Hello!" }],
  model: "YOUR_MODEL_NAME",
});
console.log(JSON.stringify({ content: response.choices[0].message.content }));

const stream = await portkey.chat.completions.create({
  messages: [{ role: "user", content: "stream me" }],
  model: "YOUR_MODEL_NAME",
  stream: true,
});
let text = "";
for await (const chunk of stream) text += chunk.choices[0]?.delta?.content || "";
console.log(JSON.stringify({ streamed: text }));
