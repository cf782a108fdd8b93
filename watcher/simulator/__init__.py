"""A simulated Assistants API: runs and steps whose statuses move on a script; beside them,
background responses, batches, fine-tuning jobs and vector-store file batches.

`scenario` (the script: JSON, parsed; `scenario_specs` its dataclasses, `scenario_generator`
random ones), `state` (pure: objects at clock time t), `longrunning*` and `kinds` (the same
for the long-running kinds), `paging` (cursors), `faults` (injected failures, OpenAI's
error shape), `app` (the Starlette app: checks and counts) with its routes
(`assistants_routes`, `longrunning_routes`, `control_routes`) and `clocks`, `server`
(uvicorn in the current event loop).
"""
