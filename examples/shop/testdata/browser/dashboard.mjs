// Drives the shop's dashboard in Chromium, for
// examples/shop/dashboard_browser_test.go: it sees the four services,
// places orders through the gateway (one of a product the worker
// refuses, which dead-letters its order-placed event), waits for that
// dead letter in the list, saves a screenshot, clicks Replay and sees the
// dead letter leave the list.
//
// Environment: DASHBOARD_URL, GATEWAY_URL, API_KEY, REFUSED_SKU,
// SCREENSHOT (a PNG path), CHROMIUM (the browser's executable).
import { chromium } from "playwright-core";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const dashboardURL = env("DASHBOARD_URL"), gatewayURL = env("GATEWAY_URL"), apiKey = env("API_KEY");
const refused = env("REFUSED_SKU"), screenshot = env("SCREENSHOT"), executablePath = env("CHROMIUM");
const step = (what) => console.log("browser: " + what);

async function order(sku, quantity) {
  const resp = await fetch(gatewayURL + "/orders", {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-API-Key": apiKey },
    body: JSON.stringify({ sku, quantity }),
  });
  const body = await resp.json();
  if (resp.status !== 202) throw new Error(`POST /orders ${sku}: ${resp.status} ${JSON.stringify(body)}`);
  return body.order_id;
}

const browser = await chromium.launch({
  executablePath,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1500 } });
  const problems = [];
  page.on("pageerror", (e) => problems.push("page error: " + e.message));
  page.on("console", (m) => { if (m.type() === "error") problems.push("console: " + m.text()); });
  page.on("response", (r) => { if (r.status() >= 400) problems.push(`${r.status()} ${r.url()}`); });
  page.on("dialog", (d) => d.accept());

  step("open " + dashboardURL);
  await page.goto(dashboardURL);
  await page.locator("#status.live").waitFor({ timeout: 15000 });
  const services = page.locator("#services tr.service");
  await page.waitForFunction(() => document.querySelectorAll("#services tr.service").length === 4, null, { timeout: 15000 });
  const names = (await services.evaluateAll((rows) => rows.map((r) => r.dataset.service))).sort();
  if (names.join(",") !== "catalog,gateway,orders,worker") throw new Error("services: " + names);
  step("sees the four services: " + names.join(", "));
  await page.locator('#picture g.svc[data-service="worker"]').waitFor();

  for (const sku of ["mug", "shirt", "mug"]) await order(sku, 1);
  const id = await order(refused, 1);
  step(`placed order ${id} of ${refused}, which the worker refuses`);

  const row = page.locator("#dead-letters tr.dead-letter", { hasText: id });
  await row.waitFor({ timeout: 30000 });
  const text = await row.innerText();
  if (!text.includes("order-placed") || !text.includes("worker / invoice")) throw new Error("dead letter row: " + text);
  step("sees its dead letter: " + text.replace(/\s+/g, " ").slice(0, 160));
  await page.locator("#jobs tr.run").first().waitFor({ timeout: 15000 });
  // The calls its handlers made show in a service's AsyncAPI document,
  // which the dashboard reads again every 10 s.
  await page.locator("#picture path.edge.call").first().waitFor({ timeout: 30000 });
  step("sees the calls between services");
  await page.screenshot({ path: screenshot, fullPage: true });
  step("saved " + screenshot);

  await row.locator("button.replay").click();
  await row.waitFor({ state: "detached", timeout: 30000 });
  await page.locator("#action-result", { hasText: "replayed" }).waitFor();
  step("clicked Replay; the dead letter left the list");
  if (problems.length) throw new Error(problems.join("\n"));
  console.log("ORDER " + id);
} finally {
  await browser.close();
}
