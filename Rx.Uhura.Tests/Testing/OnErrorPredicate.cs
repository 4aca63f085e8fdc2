using System.Reactive;

namespace Microsoft.Reactive.Testing;

/// <summary>Expected OnError notification whose exception is matched by a predicate.</summary>
internal sealed class OnErrorPredicate<T> : PredicateNotification<T>
{
    private readonly Func<Exception, bool> _predicate;

    public OnErrorPredicate(Func<Exception, bool> predicate) =>
        _predicate = predicate ?? throw new ArgumentNullException(nameof(predicate));

    public override NotificationKind Kind => NotificationKind.OnError;

    public override bool HasValue => false;

    protected override bool Matches(Notification<T> actual) => _predicate(actual.Exception!);

    public override string ToString() => "OnError(<predicate>)";
}
