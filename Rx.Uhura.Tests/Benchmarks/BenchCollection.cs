namespace Rx.Uhura.Tests.Benchmarks;

/// <summary>
/// The tests that run the comparison harness in this process run by themselves, after the parallel tests: the
/// harness measures the whole process (managed memory, allocations) and loads both cores, so it should neither be
/// disturbed by other tests nor disturb their timeouts.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class BenchCollection
{
    public const string Name = "Bench";
}
