// Sends track events through Segment's official Node library (@segment/analytics-node),
// unchanged but for its `host` setting, to the endpoint given on the command line.
// Usage: node send_with_analytics_node.js <host> <write key> <message id prefix> <count>
const { Analytics } = require('@segment/analytics-node');

async function main() {
  const [host, writeKey, prefix, count] = process.argv.slice(2);
  const errors = [];
  const analytics = new Analytics({ writeKey, host, maxRetries: 0, flushInterval: 100 });
  analytics.on('error', (err) => errors.push(String(err && (err.reason || err.message || err))));
  for (let i = 0; i < Number(count); i++) {
    analytics.track({
      userId: `node-user-${i}`,
      event: 'Email Opened',
      messageId: `${prefix}-${i}`,
      properties: { email_subject: 'Hello from Node', email_id: `M${i}` },
      timestamp: new Date('2024-01-04T18:04:00Z'),
    });
  }
  await analytics.closeAndFlush({ timeout: 20000 });
  console.log(JSON.stringify({ errors }));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
