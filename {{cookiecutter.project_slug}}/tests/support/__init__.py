"""Real local stand-ins for what the function talks to, shared by the tests and tools/invoke.py.

mongo.py          a MongoDB wire-protocol server (mongoeco, or MONGODB_TEST_URI) with connection
                  counting and fault injection (stop/start on the same port, hang)
replica_set.py    a three-member replica set like Atlas's (TLS, step-down, hang), its members
                  admitting new connections through limiter.py, mongod's rate limiter
fleet.py          many execution environments at once, each a process under awslambdaric
cold_wave.py      a cold wave of them against the limiter, with what the limiter saw
auth.py           what this project's auth mode needs (LocalAuth: the servers' users and the
                  function's credentials) and its name (MODE); one variant per mode, chosen at
                  generation, with the modules of that mode beside it
runtime_api.py    the AWS Lambda Runtime API, enough to drive awslambdaric
lambda_process.py the function run by awslambdaric in its own process, as Lambda runs it
project.py        where the project's folders and function package are (no template variables)
invoke.py         the local invoke behind tools/invoke.py and `make invoke`
"""
