"""A streamed chat completion through fluxgate whose upstream cuts the stream: the OpenAI Python SDK
must raise, not return as if the answer were complete. Usage: openai_sdk_truncated.py BASE_URL KEY.
Prints EVENTS <n> and then RAISED <exception class> or RETURNED."""
import sys

import openai

base_url, key = sys.argv[1], sys.argv[2]
client = openai.OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=20)
events = 0
try:
    stream = client.chat.completions.create(
        model="gpt-mock", messages=[{"role": "user", "content": "Say hello."}], stream=True)
    for _ in stream:
        events += 1
    print("EVENTS", events)
    print("RETURNED")
except Exception as error:  # the class is the finding
    print("EVENTS", events)
    print("RAISED", type(error).__name__)
