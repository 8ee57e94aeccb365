"""queries: canned and user Cypher, And-Or graphs, few-shot part localisation, comparison."""
