using System.Reactive;

namespace Microsoft.Reactive.Testing;

/// <summary>Expected OnNext notification whose value is matched by a predicate.</summary>
internal sealed class OnNextPredicate<T> : PredicateNotification<T>
{
    private readonly Func<T, bool> _predicate;

    public OnNextPredicate(Func<T, bool> predicate) =>
        _predicate = predicate ?? throw new ArgumentNullException(nameof(predicate));

    public override NotificationKind Kind => NotificationKind.OnNext;

    public override bool HasValue => true;

    protected override bool Matches(Notification<T> actual) => _predicate(actual.Value);

    public override string ToString() => "OnNext(<predicate>)";
}
