"""The REPL (DESIGN section 4): a submission compiled in a project's scope and run.

    scope.prepare(plan, store, project, target) -> Scope   library realised, scope precompiled
    runner.build(scope.spec(), store, code) -> Runner      content-addressed, cached runner
    child.run(executable, works, tmp) -> Ended              streamed, interruptible child
    Session.prepare(...) / Session.recall(memo, ...)        all three, for eval and repl
"""
