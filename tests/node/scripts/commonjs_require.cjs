// CommonJS, as older Node projects write it: `require('portkey-ai').Portkey`.
const { Portkey } = require('portkey-ai')

const portkey = new Portkey({
    apiKey: "PORTKEY_API_KEY",
    baseURL: process.env.GATEWAY_URL,
    provider: "openai",
    customHost: process.env.MODEL_SERVER_URL,
})
portkey.chat.completions.create({
  messages: [{ role: "user", content: "commonjs" }],
  model: "YOUR_MODEL_NAME",
}).then((response) => console.log(JSON.stringify({ content: response.choices[0].message.content })));
