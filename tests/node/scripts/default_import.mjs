// The seed's first line, `import Portkey from 'portkey-ai'`, under plain Node ESM: portkey-ai is a
// CommonJS package, so the default import is its whole exports object, not the class.
import Portkey from 'portkey-ai'

try {
  new Portkey({ apiKey: "PORTKEY_API_KEY", baseURL: process.env.GATEWAY_URL });
  console.log(JSON.stringify({ constructed: true }));
} catch (error) {
  console.log(JSON.stringify({ constructed: false, error: String(error) }));
}
// What works with the same default import: its named member.
const portkey = new Portkey.Portkey({
    apiKey: "PORTKEY_API_KEY",
    baseURL: process.env.GATEWAY_URL,
    provider: "openai",
    customHost: process.env.MODEL_SERVER_URL,
})
const response = await portkey.chat.completions.create({
  messages: [{ role: "user", content: "default import" }],
  model: "YOUR_MODEL_NAME",
});
console.log(JSON.stringify({ content: response.choices[0].message.content }));
