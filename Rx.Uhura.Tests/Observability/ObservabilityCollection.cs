namespace Rx.Uhura.Tests.Observability;

/// <summary>
/// The tests that read the process-wide <c>Rx.Uhura</c> meter and activity source run by themselves, after the parallel
/// tests, so the totals they assert are exact: no other test's connections count meanwhile.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ObservabilityCollection
{
    public const string Name = "Observability";
}
