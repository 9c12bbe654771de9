# Client snippets printed in docs/reference/wamessenger-api.txt, copied verbatim.
# The tests change only the base URL (and fill in the token and session id placeholders).
DOC_BASE = "https://wamessenger.alintro.com"

CURL_SESSION_SEND = """curl -X POST "https://wamessenger.alintro.com/api/sessions/{sessionId}/send" \\
-H "Authorization: Bearer YOUR_TOKEN" \\
-H "Content-Type: application/json" \\
-d '{
"to": "919876543210",
"message": "Hello from WAMessenger API! 🚀"
}'"""

NODE_SESSION_SEND = """async function sendMessage(sessionId, to, message) {
const response = await fetch(
`https://wamessenger.alintro.com/api/sessions/${sessionId}/send`,
{
method: 'POST',
headers: {
'Authorization': `Bearer ${token}`,
'Content-Type': 'application/json'
},
body: JSON.stringify({ to, message })
}
);
return response.json();
}
// Usage
const result = await sendMessage(
'session-uuid',
'919876543210',
'Hello from WAMessenger API! 🚀'
);
console.log(result.success ? 'Message sent!' : 'Failed');"""

PYTHON_SESSION_SEND = """import requests
def send_message(session_id, to, message):
    response = requests.post(
        f'https://wamessenger.alintro.com/api/sessions/{session_id}/send',
        headers={'Authorization': f'Bearer {token}'},
        json={'to': to, 'message': message}
    )
    return response.json()
# Usage
result = send_message(
    'session-uuid',
    '919876543210',
    'Hello from WAMessenger API! 🚀'
)
print('Sent!' if result['success'] else 'Failed')"""

CURL_LEGACY_INIT = """curl -X POST "https://wamessenger.alintro.com/api/whatsapp/init\""""

CURL_LEGACY_SEND = """curl -X POST "https://wamessenger.alintro.com/api/whatsapp/send" \\
-H "Content-Type: application/json" \\
-d '{
"number": "919876543210",
"message": "Hello from WAMessenger!"
}'"""

NODE_LEGACY_SEND = """const response = await fetch('https://wamessenger.alintro.com/api/whatsapp/send', {
method: 'POST',
headers: { 'Content-Type': 'application/json' },
body: JSON.stringify({
number: '919876543210',
message: 'Hello from WAMessenger!'
})
});"""

CURL_BULK = """curl -X POST "https://wamessenger.alintro.com/api/whatsapp/bulk-send" \\
-H "Content-Type: application/json" \\
-d '{
"contacts": [
"919876543210",
"919876543211",
"919876543212"
],
"message": "🎉 Special offer just for you!",
"delay": 3000
}'"""

NODE_BULK = """const contacts = [
'919876543210',
'919876543211',
'919876543212'
];
const response = await fetch('https://wamessenger.alintro.com/api/whatsapp/bulk-send', {
method: 'POST',
headers: { 'Content-Type': 'application/json' },
body: JSON.stringify({
contacts,
message: '🎉 Special offer just for you!',
delay: 3000
})
});
const { total, sent, failed, results } = await response.json();
console.log(`Sent: ${sent}/${total}, Failed: ${failed}`);"""

PYTHON_BULK = """import requests
contacts = [
    '919876543210',
    '919876543211',
    '919876543212'
]
response = requests.post(
    'https://wamessenger.alintro.com/api/whatsapp/bulk-send',
    json={
        'contacts': contacts,
        'message': '🎉 Special offer just for you!',
        'delay': 3000
    }
)
data = response.json()
print(f"Sent: {data['sent']}/{data['total']}, Failed: {data['failed']}")"""
