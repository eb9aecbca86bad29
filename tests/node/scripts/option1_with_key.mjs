// The seed's Option 1 NodeJS snippet (Model Catalog) with a real gateway API key from the environment;
// then the plain openai SDK with the same key as its apiKey (sent as Authorization: Bearer sg-…).
import { Portkey } from 'portkey-ai'
import OpenAI from 'openai'

const portkey = new Portkey({
    apiKey: process.env.PORTKEY_API_KEY,
    baseURL: process.env.GATEWAY_URL,
    provider:"@my-private-llm"
})

async function main() {
  try {
    const response = await portkey.chat.completions.create({
      messages: [{ role: "user", content: "Explain quantum computing in simple terms" }],
      model: "YOUR_MODEL_NAME",
    });
    console.log(JSON.stringify({ content: response.choices[0].message.content }));
  } catch (error) {
    console.log(JSON.stringify({ status: error.status, message: error.error?.message ?? String(error) }));
  }
  const openai = new OpenAI({ apiKey: process.env.PORTKEY_API_KEY, baseURL: process.env.GATEWAY_URL,
                              maxRetries: 0 });
  try {
    const response = await openai.chat.completions.create({
      messages: [{ role: "user", content: "openai sdk" }], model: "@my-private-llm/YOUR_MODEL_NAME" });
    console.log(JSON.stringify({ content: response.choices[0].message.content }));
  } catch (error) {
    console.log(JSON.stringify({ status: error.status, message: error.error?.message ?? String(error) }));
  }
}

main();
