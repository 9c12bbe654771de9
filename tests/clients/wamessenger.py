# The "Python - Complete Integration" client printed in docs/reference/wamessenger-api.txt,
# copied unchanged except for BASE_URL (the tests point it at a live wagate server).
import requests
import time

class WAMessenger:
    BASE_URL = 'https://wamessenger.alintro.com/api'

    def __init__(self):
        self.token = None
        self.session_id = None

    def _headers(self):
        return {
            'Authorization': f'Bearer {self.token}',
            'Content-Type': 'application/json'
        }

    def login(self, email, password):
        response = requests.post(
            f'{self.BASE_URL}/login',
            json={'email': email, 'password': password}
        )
        data = response.json()
        self.token = data['token']
        return data

    def create_session(self, name='My Session'):
        response = requests.post(
            f'{self.BASE_URL}/sessions',
            headers=self._headers(),
            json={'name': name}
        )
        data = response.json()
        self.session_id = data['sessionId']
        return data

    def get_qr_code(self):
        response = requests.get(
            f'{self.BASE_URL}/sessions/{self.session_id}/qr',
            headers=self._headers()
        )
        return response.json()

    def wait_for_connection(self, max_attempts=60, interval=2):
        for _ in range(max_attempts):
            response = requests.get(
                f'{self.BASE_URL}/sessions/{self.session_id}/status',
                headers=self._headers()
            )
            data = response.json()
            if data['status'] == 'connected':
                return True
            time.sleep(interval)
        raise TimeoutError('Connection timeout')

    def send_message(self, to, message):
        response = requests.post(
            f'{self.BASE_URL}/sessions/{self.session_id}/send',
            headers=self._headers(),
            json={'to': to, 'message': message}
        )
        return response.json()
