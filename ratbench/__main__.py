from ratbench.cli import main

main()
