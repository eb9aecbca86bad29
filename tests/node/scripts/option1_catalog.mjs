// The seed's Option 1 NodeJS snippet (Model Catalog), only the base URL added; then the same call streamed.
import { Portkey } from 'portkey-ai'

const portkey = new Portkey({
    apiKey: "PORTKEY_API_KEY",
    baseURL: process.env.GATEWAY_URL,
    provider:"@my-private-llm"
})

async function main() {
  const response = await portkey.chat.completions.create({
    messages: [{ role: "user", content: "Explain quantum computing in simple terms" }],
    model: "YOUR_MODEL_NAME",  // The model name your private deployment expects
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
