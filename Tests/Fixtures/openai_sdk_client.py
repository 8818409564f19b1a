"""The official OpenAI Python SDK against fluxgate: a chat completion, a streamed one, and the
error a wrong key produces. Usage: openai_sdk_client.py BASE_URL CLIENT_KEY"""
import sys

import openai

base_url, key = sys.argv[1], sys.argv[2]
client = openai.OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=20)
messages = [{"role": "user", "content": "Say hello."}]

completion = client.chat.completions.create(model="gpt-mock", messages=messages)
print("COMPLETION", completion.choices[0].message.content)

stream = client.chat.completions.create(
    model="gpt-mock", messages=messages, stream=True, stream_options={"include_usage": True}
)
pieces = [chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices]
print("STREAM", len(pieces), "".join(pieces))

try:
    openai.OpenAI(base_url=base_url, api_key="not-a-valid-key", max_retries=0, timeout=20).models.list()
    print("AUTHERROR none")
except openai.AuthenticationError as error:
    print("AUTHERROR", error.status_code, error.message)
