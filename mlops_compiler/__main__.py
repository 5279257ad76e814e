from mlops_compiler.cli.main import main

main()
