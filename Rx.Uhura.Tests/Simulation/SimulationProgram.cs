namespace Rx.Uhura.Tests.Simulation;

/// <summary>
/// The test assembly's entry point, for the simulation only (<c>dotnet Rx.Uhura.Tests.dll simulate FIRST COUNT
/// [native,node,mesh]</c>, with <c>DOTNET_PROCESSOR_COUNT=1</c>): it runs the seeds one after another on a thread pool
/// of one thread and prints one line per seed and wire (<see cref="SimulationOutcome"/>). The test runner does not use
/// it; <see cref="SimulationTests"/> starts it as a process.
/// </summary>
public static class SimulationProgram
{
    public static int Main(string[] args)
    {
        if (args.Length < 3 || args[0] != "simulate" || !int.TryParse(args[1], out var first) || !int.TryParse(args[2], out var count))
        {
            Console.Error.WriteLine("usage: Rx.Uhura.Tests simulate FIRST COUNT [native,node,mesh]   (with DOTNET_PROCESSOR_COUNT=1)");
            return 2;
        }

        if (!SingleThread.TryEnter(out var why))
        {
            Console.Error.WriteLine("error: " + why);
            return 2;
        }

        var wires = (args.Length > 3 ? args[3] : "native,node,mesh").Split(',');
        if (wires.Except(["native", "node", "mesh"]).FirstOrDefault() is { } unknown)
        {
            Console.Error.WriteLine($"error: no simulation of '{unknown}' (native, node or mesh)");
            return 2;
        }

        var failures = 0;
        for (var seed = first; seed < first + count; seed++)
        {
            foreach (var wire in wires)
            {
                SimulationOutcome outcome;
                try
                {
                    // The driver runs on the pool's one thread, like everything it drives; this thread only waits.
                    outcome = Task.Run(() => wire switch
                    {
                        "native" => Simulator.RunAsync(seed, WireProtocol.Native),
                        "node" => Simulator.RunAsync(seed, WireProtocol.NodeUhura),
                        _ => MeshSimulator.RunAsync(seed),
                    }).GetAwaiter().GetResult();
                }
                catch (Exception ex)
                {
                    outcome = new SimulationOutcome(seed, wire, "the run threw " + ex, "", "");
                }

                failures += outcome.Failure is null ? 0 : 1;
                Console.Out.WriteLine(outcome);
                Console.Out.Flush();
            }
        }

        return failures == 0 ? 0 : 1;
    }
}
