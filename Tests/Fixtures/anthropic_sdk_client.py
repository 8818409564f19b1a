"""The official Anthropic Python SDK against fluxgate: a message and a streamed one.
Usage: anthropic_sdk_client.py BASE_URL CLIENT_KEY"""
import sys

import anthropic

base_url, key = sys.argv[1], sys.argv[2]
client = anthropic.Anthropic(base_url=base_url, api_key=key, max_retries=0, timeout=20)
messages = [{"role": "user", "content": "Say hello."}]

message = client.messages.create(model="claude-mock", max_tokens=64, messages=messages)
print("MESSAGE", message.content[0].text, message.usage.input_tokens, message.usage.output_tokens)

with client.messages.stream(model="claude-mock", max_tokens=64, messages=messages) as stream:
    text = "".join(stream.text_stream)
    final = stream.get_final_message()
print("STREAM", text, final.usage.output_tokens)
