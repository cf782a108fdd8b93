"""A simulated Assistants API: runs and steps whose statuses move on a script.

`scenario` (the script: JSON, parsed and generated), `state` (pure: objects at clock time t),
`faults` (injected failures, OpenAI's error shape), `app` (the Starlette app and its clocks),
`server` (uvicorn in the current event loop).
"""
