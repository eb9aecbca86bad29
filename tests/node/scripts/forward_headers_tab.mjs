// The seed's "Securely Forwarding Sensitive Headers" NodeJS tab, only the base URL and the model server's
// address changed, and a call added (the tab only builds the client).
import { Portkey } from 'portkey-ai'

const portkey = new Portkey({
    apiKey: "PORTKEY_API_KEY",
    baseURL: process.env.GATEWAY_URL,
    provider: "openai",
    customHost: process.env.MODEL_SERVER_URL,
    // Headers to include with requests
    Authorization: "Bearer sk_live_xxxxx",
    xApiKey: "sensitive-key-value",
    xOrgId: "org-12345",
    // Headers to forward without processing
    forwardHeaders: ["Authorization", "xApiKey", "xOrgId"]
})

const response = await portkey.chat.completions.create({
  messages: [{ role: "user", content: "Hello!" }],
  model: "YOUR_MODEL_NAME",
});
console.log(JSON.stringify({ content: response.choices[0].message.content }));
