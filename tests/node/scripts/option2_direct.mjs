// The seed's Option 2 NodeJS snippet (direct integration), only the base URL and the model server's
// address changed; then the same call streamed.
import { Portkey } from 'portkey-ai'

const portkey = new Portkey({
    apiKey: "PORTKEY_API_KEY",
    baseURL: process.env.GATEWAY_URL,
    provider: "openai",  // The API spec your LLM implements
    customHost: process.env.MODEL_SERVER_URL,  // Include the API version
    Authorization: "Bearer YOUR_AUTH_TOKEN",  // Optional: Any auth headers needed
    forwardHeaders: ["Authorization"]  // Headers to forward without processing
})

async function main() {
  const response = await portkey.chat.completions.create({
    messages: [{ role: "user", content: "Explain quantum computing in simple terms" }],
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
}

main();
